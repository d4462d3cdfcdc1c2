; rvblk end-to-end boot program (16-bit real mode, NASM syntax).
;
; Used unchanged as the MBR of the HDD image, the boot sector of the floppy image and the El Torito
; no-emulation boot image of the ISO. It must fit in the 440 bytes before the MBR's NT disk
; signature; `tests/e2e/src/images.rs` places it and adds the partition table and 0x55AA.
;
; What it writes to COM1 (0x3F8), one line each, all numbers in hex:
;   E2E DL=<dl>
;   IVT13 <seg:off>                 INT 13h vector as MEMDISK left it
;   MBFT <phys>                     u32 at safe hook + 0x1B, when IVT[0x13] is a $INT13SF hook
;   E820 <start> <length> <type>    the INT 15h E820 map as served through the current vector
;   E820RAW <start> <length> <type> the same map from the BIOS handler MEMDISK replaced
;                                   (MDI.oldint15), i.e. the map without MEMDISK's reservations
;   IVT13 <seg:off>                 (only when assembled with -DHIDE_CHAIN or -DFOREIGN_HOOK)
;                                   again, after installing an INT 13h hook in front of MEMDISK's:
;                                   HIDE_CHAIN: an unsafe hook, no $INT13SF header (a plain far jump
;                                   to the previous handler), so the safe-hook chain ends there;
;                                   FOREIGN_HOOK: a safe hook of another vendor ("RVBLKTST") whose
;                                   prev is MEMDISK's, so the chain goes on through it. This one is
;                                   larger than 440 bytes and is only for the El Torito image.
;   MARK:HALT
; and then halts with interrupts off.

bits 16
org 0x7C00

start:
        jmp     0x0000:entry            ; normalise CS:IP (El Torito may enter at 07C0:0000)
                                        ; (0xEA, not 0xEB/0xE9: MEMDISK must not read a BPB here)
entry:
        cli
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7C00
        sti
        cld
        mov     si, s_boot
        call    puts
        mov     al, dl
        call    hex8
        call    crlf

        mov     si, s_ivt13
        call    puts
        call    print_ivt13
        call    crlf

        ; E820 through whatever INT 15h is now (MEMDISK's hook).
        mov     eax, [0x15*4]
        mov     [vec], eax
        mov     si, s_e820
        call    dump_e820

        ; Follow IVT[0x13] -> safe hook -> mBFT -> MDI.oldint15 (the BIOS's own INT 15h).
        les     bx, [0x13*4]
        cmp     dword [es:bx+3], '$INT'
        jne     .no_hook
        cmp     dword [es:bx+7], '13SF'
        jne     .no_hook
        mov     ebp, [es:bx+0x1B]       ; physical address of the mBFT
        mov     si, s_mbft
        call    puts
        mov     eax, ebp
        call    hex32
        call    crlf
        mov     eax, ebp
        mov     edx, eax
        shr     edx, 4
        mov     es, dx
        and     ax, 0x000F
        mov     bx, ax
        mov     eax, [es:bx+0x28+0x14]  ; MDI.oldint15 (far pointer)
        mov     [vec], eax
        mov     si, s_e820raw
        call    dump_e820
.no_hook:

%ifdef HIDE_CHAIN
%define INSTALL_HOOK
%endif
%ifdef FOREIGN_HOOK
%define INSTALL_HOOK
%endif
%ifdef INSTALL_HOOK
        ; Put our own INT 13h hook in front of MEMDISK's (see the header for the two kinds).
        cli
        mov     eax, [0x13*4]
        mov     [hook_prev], eax
        mov     word [0x13*4], hook
        mov     word [0x13*4+2], 0
        sti
        mov     si, s_ivt13
        call    puts
        call    print_ivt13
        call    crlf
%endif

        mov     si, s_halt
        call    puts
halt:
        cli
        hlt
        jmp     halt

; ---- E820: print every record as "<tag><start> <length> <type>\r\n"; si = tag, [vec] = handler
dump_e820:
        mov     [tag], si
        xor     ebx, ebx
.next:
        mov     eax, 0xE820
        mov     ecx, 20
        mov     edx, 0x534D4150         ; 'SMAP'
        mov     di, e820buf
        push    ds
        pop     es                      ; ES:DI = buffer (ES was used to reach the MDI)
        pushf
        call    far [vec]
        jc      .done
        cmp     eax, 0x534D4150
        jne     .done
        push    ebx
        mov     si, [tag]
        call    puts
        mov     eax, [e820buf+4]
        call    hex32
        mov     eax, [e820buf]
        call    hex32
        call    space
        mov     eax, [e820buf+12]
        call    hex32
        mov     eax, [e820buf+8]
        call    hex32
        call    space
        mov     eax, [e820buf+16]
        call    hex32
        call    crlf
        pop     ebx
        test    ebx, ebx
        jnz     .next
.done:
        ret

print_ivt13:
        mov     eax, [0x13*4]
; ---- print a far pointer in eax (segment in the high word) as SSSS:OOOO
farptr:
        push    eax
        shr     eax, 16
        call    hex16
        mov     al, ':'
        call    putc
        pop     eax
; ---- hex printers (eax / ax / al)
hex16:
        push    ax
        mov     al, ah
        call    hex8
        pop     ax
        jmp     hex8
hex32:
        push    eax
        shr     eax, 16
        call    hex16
        pop     eax
        jmp     hex16
hex8:
        push    ax
        shr     al, 4
        call    .nib
        pop     ax
.nib:
        and     al, 0x0F
        add     al, '0'
        cmp     al, '9'
        jbe     putc
        add     al, 'A' - '9' - 1
        jmp     putc
space:
        mov     al, ' '
        jmp     putc
crlf:
        mov     si, s_crlf
; ---- print the NUL-terminated string at ds:si
puts:
        lodsb
        test    al, al
        jz      .ret
        call    putc
        jmp     puts
.ret:
        ret
; ---- write al to COM1, waiting for the transmitter holding register
putc:
        push    dx
        push    ax
        mov     dx, 0x3FD
.wait:
        in      al, dx
        test    al, 0x20
        jz      .wait
        pop     ax
        mov     dx, 0x3F8
        out     dx, al
        pop     dx
        ret

%ifdef HIDE_CHAIN
hook:
        db      0xEA                    ; jmp far ptr16:16
hook_prev:
        dd      0
%endif
%ifdef FOREIGN_HOOK
; A safe hook (SafeMBRHook layout, docs/loaders.md §2.2) of a vendor no driver knows.
hook:
        jmp     near hook_handler       ; +0x00, 3 bytes
        db      '$INT13SF'              ; +0x03
        db      'RVBLKTST'              ; +0x0B vendor
hook_prev:
        dd      0                       ; +0x13 previous INT 13h handler
        dd      0                       ; +0x17 flags
        dd      0                       ; +0x1B vendor specific
hook_handler:
        jmp     far [cs:hook_prev]
%endif

s_boot    db    'E2E DL=', 0
s_ivt13   db    'IVT13 ', 0
s_mbft    db    'MBFT ', 0
s_e820    db    'E820 ', 0
s_e820raw db    'E820RAW ', 0
s_halt    db    'MARK:HALT'
s_crlf    db    13, 10, 0

code_end:
%ifdef FOREIGN_HOOK
%if code_end - start > 510
%error "boot program exceeds one sector"
%endif
%elif code_end - start > 440
%error "boot program exceeds the 440 bytes before the MBR disk signature"
%endif

; Variables live past the end of the loaded image (an El Torito load is 4 x 512 bytes), never in
; the image itself.
absolute 0x8400
tag     resw    1
vec     resd    1
e820buf resb    20
